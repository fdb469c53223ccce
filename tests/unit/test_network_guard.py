"""The unit suite's own guard rail: no test can reach the network."""

from __future__ import annotations

import os
import socket

import pytest
import requests

BLOCKED = "unit tests must not use the network"


def test_socket_connect_is_refused() -> None:
    # Given a plain TCP socket
    # When it tries to connect anywhere
    # Then the unit-test guard refuses
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock,
        pytest.raises(RuntimeError, match=BLOCKED),
    ):
        sock.connect(("192.0.2.1", 443))


def test_create_connection_is_refused() -> None:
    # Given the stdlib's connection helper
    # When it is asked to connect
    # Then the guard refuses
    with pytest.raises(RuntimeError, match=BLOCKED):
        socket.create_connection(("192.0.2.1", 443), timeout=0.1)


def test_http_clients_cannot_reach_the_network() -> None:
    # Given the HTTP client the function uses
    # When a request is attempted
    # Then it fails before any packet leaves
    with pytest.raises((RuntimeError, requests.ConnectionError)):
        requests.get("https://api.novita.ai/v3/cleanup", timeout=0.1)


def test_powertools_environment_is_set() -> None:
    # Given any unit test
    # When the environment is read
    # Then tracing is off, the metrics namespace and region are fixed
    assert os.environ["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert os.environ["POWERTOOLS_METRICS_NAMESPACE"] == "ImageCleanup"
    assert os.environ["AWS_DEFAULT_REGION"] == "us-east-1"
