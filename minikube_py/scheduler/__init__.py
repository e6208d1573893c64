"""The scheduler: places pending pods on nodes, as kube-scheduler's default profile does.

``filters`` and ``scores`` are pure functions of (pod, node); ``algorithm`` makes one
decision over the ``cache``; ``queue`` orders pending pods and holds back failures;
``writer`` binds and writes statuses in the background; ``scheduler`` wires them to
informers. ``component`` registers it with the in-process cluster and ``standalone`` runs
it as ``minikube-py scheduler --kubeconfig FILE``.
"""
