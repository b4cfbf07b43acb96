"""Shared viewing: a second `aksnet-top` on the same host, against the same context,
attaches to the first one's engine over a local Unix socket instead of starting its own.

- place:  where the socket lives (the user's runtime directory, owner-only), keyed by a
          hash of the context; who owns it (a lock held for the owner's lifetime)
- wire:   length-prefixed msgpack messages on the socket
- host:   the owner's side: frames' changes (the recorder's codec) to every viewer,
          one bounded queue per viewer (a slow viewer is sent the latest state, never
          stalls the engine)
- viewer: the viewer's side: stands where the app's publisher stands
"""
