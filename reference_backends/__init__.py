"""Reference implementations of :class:`pmcp_tasks.StorageBackend`.

Each backend lives in its own module behind its own extra; importing this package imports none
of them, so the core never pulls in a third-party client.
"""
