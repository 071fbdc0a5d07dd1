/*
 * bench_event.h: the realistic event every evbus benchmark sends, stores
 * or decodes: a signal_generated event with an id, ts, source, corr and
 * eight data fields. Encoded with a seq and an epoch, as the broker
 * publishes it, it takes 302 bytes of MessagePack.
 *
 * It is a header with the text alone (no library), so that `evbus bench`
 * (cli/cmd_bench.c) uses the same bytes as bench/proto_bench.c even in a
 * build without the bench programs (EVB_BENCH=OFF).
 */
#ifndef EVB_BENCH_EVENT_H
#define EVB_BENCH_EVENT_H

/* The event as one line of JSON (evb_proto_event_from_json). */
#define BENCH_EVENT_JSON                                                   \
	"{\"type\":\"signal_generated\",\"id\":"                           \
	"\"01JDQ4Z8M6W3V8K2N5R7T9X1YB\","                                  \
	"\"ts\":1764035435123456789,\"source\":\"sig_gen\","               \
	"\"corr\":\"EG_EURUSD_1764\","                                     \
	"\"data\":{\"signal_id\":\"EG_EURUSD_1764\","                      \
	"\"symbol\":\"EURUSD\",\"direction\":\"BUY\",\"confidence\":85.5," \
	"\"pattern_type\":\"LIQUIDITY_SWEEP_REVERSAL\",\"entry_price\":1." \
	"08452,"                                                           \
	"\"stop_loss\":1.08152,\"take_profit\":1.09052}}"

#endif /* EVB_BENCH_EVENT_H */
