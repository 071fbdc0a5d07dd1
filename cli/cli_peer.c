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
 * The one trace is in the pipe events (nng_pipe_notify): a pipe refused
 * that way gets NNG_PIPE_EV_ADD_PRE, then NNG_PIPE_EV_REM_POST, and never
 * NNG_PIPE_EV_ADD_POST (nni_dialer_add_pipe in nng's socket.c). The
 * callbacks below count such pipes. One alone might be a good peer that
 * closed the connection at once (the reaper may run REM_POST before
 * ADD_POST), so only CLI_PEER_REJECTS of them in a row, with no pipe
 * added between, condemn the peer. A peer that is no SP endpoint at all
 * (an HTTP server) fails the header swap instead, and nng_dial itself
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

/*
 * Pipes refused in a row before the peer is judged to speak another
 * protocol. nng redials 0 to 0.1 s after each (NNG_OPT_RECONNMINT), so
 * this costs about 0.1 s.
 */
#define CLI_PEER_REJECTS 2

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
	cli_peer *p    = arg;
	uint32_t  id   = (uint32_t) nng_pipe_id(pipe);
	bool      wake = false;

	evb_assert(pthread_mutex_lock(&p->mtx) == 0);
	switch (ev) {
	case NNG_PIPE_EV_ADD_PRE:
		p->pending = id;
		break;
	case NNG_PIPE_EV_ADD_POST:
		p->pending = p->pending == id ? 0 : p->pending;
		p->rejects = 0;
		p->is_up   = true;
		wake       = true;
		break;
	case NNG_PIPE_EV_REM_POST:
		if (p->pending == id) {
			p->pending = 0;
			p->rejects++;
			wake = true;
		}
		break;
	default:
		break;
	}
	evb_assert(pthread_mutex_unlock(&p->mtx) == 0);
	if (wake) {
		peer_wake(p);
	}
}

int
cli_peer_watch(const cli_cmd *cmd, nng_socket sock, cli_peer *p)
{
	static const nng_pipe_ev evs[] = { NNG_PIPE_EV_ADD_PRE,
		NNG_PIPE_EV_ADD_POST, NNG_PIPE_EV_REM_POST };
	int                      rv;

	p->fds[0] = p->fds[1] = -1;
	p->pending            = 0;
	p->rejects            = 0;
	p->is_up              = false;
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

cli_peer_state
cli_peer_get(cli_peer *p)
{
	char           buf[64];
	cli_peer_state st;

	while (read(p->fds[0], buf, sizeof(buf)) > 0) {
		// Drained: the state below covers every byte read.
	}
	evb_assert(pthread_mutex_lock(&p->mtx) == 0);
	if (p->rejects >= CLI_PEER_REJECTS) {
		st = CLI_PEER_WRONG;
	} else {
		st = p->is_up ? CLI_PEER_UP : CLI_PEER_NONE;
	}
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
