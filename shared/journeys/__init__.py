"""What happens to whom and when: the scenario language and compiler, dispatch, enrolments, pacing, the daily run.

Imports people, sources and the base, never messages: a journey decides; the messages package acts.
"""
