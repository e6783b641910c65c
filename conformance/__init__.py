"""The pmcp-tasks conformance kit: run ``pytest --backend=NAME`` to certify a StorageBackend."""
