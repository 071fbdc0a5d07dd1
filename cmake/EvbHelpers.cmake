# Helpers shared by every component's CMakeLists.txt.
#
#   evb_warnings(tgt)            per-target warnings (never global flags)
#   evb_module(name SOURCES ... DEPS ...)   a component static library
#   evb_test(name SOURCES ... DEPS ... LABELS unit|integration|crash
#            [TIMEOUT s])        a criterion test registered with ctest

function(evb_warnings tgt)
	target_compile_options(${tgt} PRIVATE
		-Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wformat=2)
endfunction()

# EVB_SANITIZE adds the sanitizer flags to every target, libraries and
# tests alike, so one build proves the whole tree.
macro(evb_sanitizer_setup)
	if(NOT EVB_SANITIZE STREQUAL "none" AND NOT EVB_SANITIZE STREQUAL "")
		set(_evb_san -fsanitize=${EVB_SANITIZE} -fno-omit-frame-pointer)
		if(EVB_SANITIZE MATCHES "undefined")
			list(APPEND _evb_san -fno-sanitize-recover=undefined)
		endif()
		add_compile_options(${_evb_san})
		add_link_options(${_evb_san})
	endif()
endmacro()

function(evb_module name)
	cmake_parse_arguments(M "" "" "SOURCES;DEPS;PUBLIC_DEPS" ${ARGN})
	add_library(${name} STATIC ${M_SOURCES})
	target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
	target_link_libraries(${name} PRIVATE ${M_DEPS} PUBLIC ${M_PUBLIC_DEPS})
	evb_warnings(${name})
endfunction()

# Test timeouts scale with EVB_TEST_TIMEOUT_MULTIPLIER (an environment
# variable read at configure time), for slow machines and sanitizer builds.
function(evb_test name)
	cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
	if(NOT T_TIMEOUT)
		set(T_TIMEOUT 120)
	endif()
	if(DEFINED ENV{EVB_TEST_TIMEOUT_MULTIPLIER})
		math(EXPR T_TIMEOUT "${T_TIMEOUT} * $ENV{EVB_TEST_TIMEOUT_MULTIPLIER}")
	endif()
	add_executable(${name} ${T_SOURCES})
	target_link_libraries(${name} PRIVATE ${T_DEPS} PkgConfig::CRITERION)
	evb_warnings(${name})
	add_test(NAME ${name} COMMAND ${name} --jobs 2)
	set_tests_properties(${name} PROPERTIES
		TIMEOUT ${T_TIMEOUT} LABELS "${T_LABELS}"
		ENVIRONMENT "EVB_BIN=$<TARGET_FILE:evbus>;EVB_TS_EXEC=$<TARGET_FILE:evb_ts_exec>;EVB_SOURCE_DIR=${PROJECT_SOURCE_DIR};LSAN_OPTIONS=suppressions=${PROJECT_SOURCE_DIR}/tests/lsan.supp")
endfunction()
