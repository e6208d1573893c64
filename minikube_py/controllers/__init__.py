"""Controllers: each an informer-fed work queue reconciling one kind of object."""
