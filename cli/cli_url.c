/*
 * cli_url.c: the URLs that options take. Every URL option is checked
 * here, once, for its scheme, so that "--bus 127.0.0.1:5570" is named as
 * the option it is; nng would refuse it later with "Invalid argument",
 * naming no option. What follows the scheme is left to nng, which knows
 * its transports.
 *
 * Also, URLs given to a listening endpoint, turned into ones that reach
 * it from this host. `evbus run` listens on --ingest and its collector
 * dials the same endpoint for its heartbeat. nng listens on every address
 * when the host is "*", but cannot dial "*", so the host of a listen URL
 * that names no one address is replaced by loopback.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

/* The characters of a URL scheme after its first letter (RFC 3986). */
#define URL_SCHEME_CHARS             \
	"abcdefghijklmnopqrstuvwxyz" \
	"ABCDEFGHIJKLMNOPQRSTUVWXYZ" \
	"0123456789+.-"

int
cli_url_check(const cli_cmd *cmd, const char *name, const char *text)
{
	size_t n;

	if (text == NULL) {
		return CLI_CONTINUE;
	}
	n = isalpha((unsigned char) text[0])
	    ? 1 + strspn(text + 1, URL_SCHEME_CHARS)
	    : 0;
	if (n > 0 && strncmp(text + n, "://", 3) == 0) {
		return CLI_CONTINUE;
	}
	return cli_usage_error(cmd,
	    "--%s: '%s' is not a URL (expected tcp://HOST:PORT, ipc://PATH "
	    "or inproc://NAME)",
	    name, text);
}

/* url_has_host says whether the scheme's URLs carry host:port (nng's
 * tcp, tls+tcp and ws transports, with their 4 and 6 variants). */
static bool
url_has_host(const char *scheme, size_t len)
{
	static const char *const names[] = { "tcp", "tcp4", "tcp6", "tls+tcp",
		"tls+tcp4", "tls+tcp6", "ws", "ws4", "ws6", "wss", "wss4",
		"wss6" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strlen(names[i]) == len &&
		    memcmp(names[i], scheme, len) == 0) {
			return true;
		}
	}
	return false;
}

/* url_host_is says whether the host (len bytes at host) is name. */
static bool
url_host_is(const char *host, size_t len, const char *name)
{
	return strlen(name) == len && memcmp(host, name, len) == 0;
}

int
cli_url_dialable(const char *listen_url, char *out, size_t cap)
{
	const char *sep = strstr(listen_url, "://");
	const char *host;
	const char *host_end;
	const char *auth_end;
	const char *repl = NULL;
	size_t      hlen;
	int         n;

	if (sep != NULL &&
	    url_has_host(listen_url, (size_t) (sep - listen_url))) {
		host     = sep + 3;
		auth_end = host + strcspn(host, "/");
		if (host[0] == '[') {
			host_end =
			    memchr(host, ']', (size_t) (auth_end - host));
			host_end = host_end != NULL ? host_end + 1 : auth_end;
		} else {
			host_end =
			    memchr(host, ':', (size_t) (auth_end - host));
			host_end = host_end != NULL ? host_end : auth_end;
		}
		hlen = (size_t) (host_end - host);
		// tcp6 and the like listen on IPv6 only: dial IPv6 loopback.
		if (url_host_is(host, hlen, "[::]") ||
		    ((hlen == 0 || url_host_is(host, hlen, "*")) &&
		        sep[-1] == '6')) {
			repl = "[::1]";
		} else if (hlen == 0 || url_host_is(host, hlen, "*") ||
		    url_host_is(host, hlen, "0.0.0.0")) {
			repl = "127.0.0.1";
		}
	}
	if (repl == NULL) {
		n = snprintf(out, cap, "%s", listen_url);
	} else {
		n = snprintf(out, cap, "%.*s%s%s", (int) (host - listen_url),
		    listen_url, repl, host_end);
	}
	return n >= 0 && (size_t) n < cap ? EVB_OK : EVB_ETOOBIG;
}
