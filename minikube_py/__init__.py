"""minikube-py: a whole Kubernetes cluster in one Python asyncio process."""

__version__ = "0.1.0"
