"""Feed ingestion adapters: registry (feeds.yaml), guarded fetch, isolated parsing, full text, language."""
