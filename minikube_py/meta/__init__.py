"""Pure helpers with no I/O: objects, selectors, patches, names."""
