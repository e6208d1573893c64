"""Allow ``python -m minikube_py``."""

from minikube_py.cli import main

raise SystemExit(main())
