/*
 * cli_event.c: events on standard output, for the commands that print
 * them (replay from the log, tail from the bus): the --type/--symbol
 * filter and the JSON line. One copy, so both commands select and print
 * an event exactly alike.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

bool
cli_event_match(const evb_event *ev, int type, const char *symbol)
{
	evb_str route;

	if (type >= 0 && evb_proto_event_type(ev) != type) {
		return false;
	}
	if (symbol == NULL) {
		return true;
	}
	// Exact: the prefix "EUR" must never pass the key "EURUSD".
	route = evb_proto_event_route(ev);
	return route.len == strlen(symbol) &&
	    memcmp(route.ptr, symbol, route.len) == 0;
}

int
cli_event_print(const cli_cmd *cmd, const evb_event *ev, evb_buf *json)
{
	int rc;

	evb_buf_reset(json);
	if ((rc = evb_proto_event_to_json(ev, json)) != EVB_OK) {
		cli_error(cmd, "%s", evb_strerror(rc));
		return CLI_EXIT_USAGE;
	}
	(void) fwrite(json->data, 1, json->len, stdout);
	(void) fputc('\n', stdout);
	return CLI_EXIT_OK;
}
