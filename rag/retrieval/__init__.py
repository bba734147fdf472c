"""Finding passages: the on-disk index (FAISS + BM25 + chunks + manifest) and hybrid search."""
