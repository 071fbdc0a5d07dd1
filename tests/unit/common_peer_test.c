/*
 * common_peer_test.c: evb_peer, the verdict on a peer of another protocol
 * from nng's pipe events (common.h). The sequences are those nng 1.5
 * gives: a pipe its protocol takes gets ADD_PRE, ADD_POST and, when it
 * goes, REM_POST; a pipe it refuses gets ADD_PRE and REM_POST only.
 */
#include <criterion/criterion.h>

#include "common/common.h"

TestSuite(peer, .timeout = 10);

static evb_peer_state
refused(evb_peer *p, uint32_t id)
{
	(void) evb_peer_note(p, id, EVB_PEER_ADD_PRE);
	return evb_peer_note(p, id, EVB_PEER_REM_POST);
}

static evb_peer_state
taken(evb_peer *p, uint32_t id)
{
	(void) evb_peer_note(p, id, EVB_PEER_ADD_PRE);
	return evb_peer_note(p, id, EVB_PEER_ADD_POST);
}

Test(peer, nothing_yet_then_a_pipe_taken_is_up)
{
	evb_peer p = { 0 };

	cr_assert_eq(evb_peer_get(&p), EVB_PEER_NONE);
	cr_assert_eq(evb_peer_note(&p, 1, EVB_PEER_ADD_PRE), EVB_PEER_NONE);
	cr_assert_eq(evb_peer_note(&p, 1, EVB_PEER_ADD_POST), EVB_PEER_UP);
	// It goes away normally: still a peer of the right protocol.
	cr_assert_eq(evb_peer_note(&p, 1, EVB_PEER_REM_POST), EVB_PEER_UP);
	cr_assert_eq(evb_peer_get(&p), EVB_PEER_UP);
}

Test(peer, two_pipes_refused_in_a_row_are_the_wrong_protocol)
{
	evb_peer p = { 0 };

	// One alone may be a good peer that closed at once.
	cr_assert_eq(refused(&p, 1), EVB_PEER_NONE);
	cr_assert_eq(refused(&p, 2), EVB_PEER_WRONG);
	cr_assert_eq(refused(&p, 3), EVB_PEER_WRONG);
	cr_assert_eq(evb_peer_get(&p), EVB_PEER_WRONG);
}

Test(peer, a_pipe_taken_between_refusals_resets_the_count)
{
	evb_peer p = { 0 };

	cr_assert_eq(refused(&p, 1), EVB_PEER_NONE);
	cr_assert_eq(taken(&p, 2), EVB_PEER_UP);
	cr_assert_eq(refused(&p, 3), EVB_PEER_UP);
	cr_assert_eq(refused(&p, 4), EVB_PEER_WRONG);
	// The URL answers with the right protocol again.
	cr_assert_eq(taken(&p, 5), EVB_PEER_UP);
}

Test(peer, only_the_pending_pipe_going_counts_as_refused)
{
	evb_peer p = { 0 };

	cr_assert_eq(taken(&p, 1), EVB_PEER_UP);
	(void) evb_peer_note(&p, 2, EVB_PEER_ADD_PRE);
	// Pipe 1, taken before, goes: not a refusal, twice over.
	cr_assert_eq(evb_peer_note(&p, 1, EVB_PEER_REM_POST), EVB_PEER_UP);
	cr_assert_eq(evb_peer_note(&p, 1, EVB_PEER_REM_POST), EVB_PEER_UP);
	cr_assert_eq(evb_peer_note(&p, 2, EVB_PEER_ADD_POST), EVB_PEER_UP);
	// A pipe that went after it was taken is no refusal either.
	cr_assert_eq(evb_peer_note(&p, 2, EVB_PEER_REM_POST), EVB_PEER_UP);
	cr_assert_eq(refused(&p, 3), EVB_PEER_UP);
	cr_assert_eq(refused(&p, 4), EVB_PEER_WRONG);
}
