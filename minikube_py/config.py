"""Frozen settings built from command-line flags, one dataclass per component."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StoreConfig:
    data_dir: Path
    etcd_servers: str = ""


@dataclass(frozen=True)
class APIServerConfig:
    store: StoreConfig
    bind_address: str = "127.0.0.1"
    port: int = 8080
    allow_insecure_remote: bool = False
    service_cluster_ip_range: str = "10.0.0.0/16"
    service_node_port_range: str = "30000-32767"

    def check(self) -> None:
        """Refuse plain HTTP with no auth on a non-loopback address unless asked for."""
        address = ipaddress.ip_address(self.bind_address)
        if not address.is_loopback and not self.allow_insecure_remote:
            raise ValueError(
                f"refusing to serve plain HTTP without authentication on {self.bind_address};"
                " use a loopback address or pass --allow-insecure-remote"
            )
        ipaddress.ip_network(self.service_cluster_ip_range)
        low, _, high = self.service_node_port_range.partition("-")
        if not (low.isdigit() and high.isdigit() and int(low) <= int(high)):
            raise ValueError(f"invalid --service-node-port-range {self.service_node_port_range!r}")
