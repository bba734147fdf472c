"""From files to chunks: loaders, boilerplate cleaning, sentence-aware chunking with exact offsets."""
