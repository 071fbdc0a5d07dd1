/*
 * cli_peer.c: whether the endpoint a command dialled speaks the protocol
 * it expects, for the commands that dial the bus (tail) and the control
 * endpoint (stats).
 *
 * nng 1.5 says nothing about a peer of the wrong protocol. A blocking
 * nng_dial returns 0 as soon as the transport has connected and the two
 * sides have swapped their SP headers (nanomsg/nng#599); only then does
 * the socket's protocol look at the peer's protocol id, in its
 * pipe_start (sub0 wants pub0, req0 wants rep0), and refuse it with
 * NNG_EPROTO, which nobody sees: the pipe is closed, the dialer dials
 * again 0.1 s later, and so on forever. A sub0 socket dialled to the
 * ingest port therefore waits silently for frames that never come.
 *
 * The one trace is in the pipe events, which evb_peer (common.h) reads:
 * the callbacks below feed it. A peer that is no SP endpoint at all (an
 * HTTP server) fails the header swap instead, and nng_dial itself
 * returns NNG_EPROTO; the commands handle that one.
 *
 * The callbacks run on nng's threads; they update the state under mtx
 * and write a byte to a pipe, whose read end the command polls with its
 * other descriptors.
 */
// pipe2 is not POSIX; glibc shows it with this.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

/* peer_wake writes a byte for the poller; a full pipe wakes it anyway. */
static void
peer_wake(cli_peer *p)
{
	ssize_t n = write(p->fds[1], "", 1);

	(void) n;
}

/* peer_event is the nng_pipe_notify callback, on an nng thread. */
static void
peer_event(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	cli_peer *p = arg;

	evb_assert(pthread_mutex_lock(&p->mtx) == 0);
	(void) evb_peer_note(&p->st, (uint32_t) nng_pipe_id(pipe),
	    ev == NNG_PIPE_EV_ADD_PRE        ? EVB_PEER_ADD_PRE
	        : ev == NNG_PIPE_EV_ADD_POST ? EVB_PEER_ADD_POST
	                                     : EVB_PEER_REM_POST);
	evb_assert(pthread_mutex_unlock(&p->mtx) == 0);
	if (ev != NNG_PIPE_EV_ADD_PRE) {
		peer_wake(p); // A pipe started or went: the state may differ.
	}
}

int
cli_peer_watch(const cli_cmd *cmd, nng_socket sock, cli_peer *p)
{
	static const nng_pipe_ev evs[] = { NNG_PIPE_EV_ADD_PRE,
		NNG_PIPE_EV_ADD_POST, NNG_PIPE_EV_REM_POST };
	int                      rv;

	p->fds[0] = p->fds[1] = -1;
	p->st                 = (evb_peer) { 0 };
	p->has_mtx            = false;
	if (pthread_mutex_init(&p->mtx, NULL) != 0) {
		cli_error(cmd, "%s", evb_strerror(EVB_ENOMEM));
		return CLI_EXIT_USAGE;
	}
	p->has_mtx = true;
	if (pipe2(p->fds, O_CLOEXEC | O_NONBLOCK) != 0) {
		cli_error(cmd, "pipe: %s", strerror(errno));
		return CLI_EXIT_USAGE;
	}
	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
		if ((rv = nng_pipe_notify(sock, evs[i], peer_event, p)) != 0) {
			cli_error(cmd, "%s", nng_strerror(rv));
			return CLI_EXIT_USAGE;
		}
	}
	return CLI_CONTINUE;
}

evb_peer_state
cli_peer_get(cli_peer *p)
{
	char           buf[64];
	evb_peer_state st;

	while (read(p->fds[0], buf, sizeof(buf)) > 0) {
		// Drained: the state below covers every byte read.
	}
	evb_assert(pthread_mutex_lock(&p->mtx) == 0);
	st = evb_peer_get(&p->st);
	evb_assert(pthread_mutex_unlock(&p->mtx) == 0);
	return st;
}

void
cli_peer_fini(cli_peer *p)
{
	for (int i = 0; i < 2; i++) {
		if (p->fds[i] >= 0) {
			(void) close(p->fds[i]);
			p->fds[i] = -1;
		}
	}
	if (p->has_mtx) {
		(void) pthread_mutex_destroy(&p->mtx);
		p->has_mtx = false;
	}
}

int
cli_peer_error(
    const cli_cmd *cmd, const cli_peer_want *w, const char *url, bool is_sp)
{
	if (is_sp) {
		cli_error(cmd,
		    "%s is not %s: what answers there speaks another "
		    "protocol (%s?); give %s the %s URL, %s of 'evbus run' or "
		    "'evbus broker' (default %s)",
		    url, w->kind, w->others, w->opt, w->noun, w->run_opt,
		    w->def);
	} else {
		cli_error(cmd,
		    "%s is not an nng endpoint (it answers without nng's "
		    "handshake); give %s the %s URL, %s of 'evbus run' or "
		    "'evbus broker' (default %s)",
		    url, w->opt, w->noun, w->run_opt, w->def);
	}
	return CLI_EXIT_USAGE;
}
