"""Pure code: no I/O, no database, no HTTP, no model. Tested without fixtures."""
