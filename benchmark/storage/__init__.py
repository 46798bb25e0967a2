"""Files on disk: atomic writes, where caches and data live, content digests, folders checked writable, row-chunked
passes over (memory-mapped) arrays (chunked.py)."""
