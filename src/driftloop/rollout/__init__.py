"""Rollouts: a candidate version taking a growing share of live traffic beside the champion.

``state`` is a rollout as the lake's ``rollouts`` table keeps it (every server routes by the
newest row, so all route alike); ``routing`` sends a request to an arm, the same one every time
for the same entity; ``guards`` judge the candidate's arm as it answers (errors, latency, how far
its outputs are from the champion's, and its decisive metric by ``evidence`` and the always-valid
test of ``sequential``); ``canary`` starts, steps, rolls back and finishes one.
"""
