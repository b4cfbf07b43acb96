"""The flight recorder: what the frames showed, kept in one SQLite file per run.

`writer` (Recorder) turns the publisher's frames into changed channels on a thread of its
own; `reader` (Recording) rebuilds the frame at any moment of a recording; `codec` is the
one place that knows how a frame's parts become rows and back; `redact` keeps credentials
out; `store` picks the files' place and keeps them bounded; `bundle` and `baseline` are the
evidence archive and the before/after comparison of `check`.
"""
