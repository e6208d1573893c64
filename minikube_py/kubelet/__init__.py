"""The kubelet: registers a node and runs the pods bound to it through a container runtime."""
