/*
 * evb_peer.c: telling a peer of another protocol from no peer, from nng's
 * pipe events (common.h, "Peers of another protocol").
 *
 * A pipe refused by the socket's protocol gets ADD_PRE and then REM_POST
 * without ADD_POST in between (nni_dialer_add_pipe in nng 1.5's
 * socket.c). One such pipe alone might be a good peer that closed the
 * connection at once (the reaper may run REM_POST before ADD_POST), so
 * only EVB_PEER_REJECTS of them in a row, with no pipe started between,
 * condemn the peer. nng redials 0 to 0.1 s after each (its default
 * NNG_OPT_RECONNMINT), so the verdict takes about 0.1 s.
 */
#include "common/common.h"

/* Pipes refused in a row before the peer is judged to speak another
 * protocol (evb_peer counts no further). */
#define EVB_PEER_REJECTS 2

evb_peer_state
evb_peer_note(evb_peer *p, uint32_t id, evb_peer_ev ev)
{
	switch (ev) {
	case EVB_PEER_ADD_PRE:
		p->pending = id;
		break;
	case EVB_PEER_ADD_POST:
		p->pending = p->pending == id ? 0 : p->pending;
		p->rejects = 0;
		p->is_up   = true;
		break;
	case EVB_PEER_REM_POST:
		if (p->pending == id) {
			p->pending = 0;
			// Saturates: a collector may redial a wrong URL for
			// years.
			p->rejects += p->rejects < EVB_PEER_REJECTS;
		}
		break;
	}
	return evb_peer_get(p);
}

evb_peer_state
evb_peer_get(const evb_peer *p)
{
	if (p->rejects >= EVB_PEER_REJECTS) {
		return EVB_PEER_WRONG;
	}
	return p->is_up ? EVB_PEER_UP : EVB_PEER_NONE;
}
