"""Every component ``minikube-py up`` runs beside the API server and the kubelet.

Importing this module registers them in ``cluster.COMPONENTS``; ``ALL`` is the order
they start in.
"""

from __future__ import annotations

ALL: tuple[str, ...] = ()
