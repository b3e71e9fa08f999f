"""The bundled reference deployment: a correct implementation of the contract, with faults."""

from conformance.reference.behaviour import Behaviour
from conformance.reference.data import Fixture
from conformance.reference.server import ReferenceServer

__all__ = ["Behaviour", "Fixture", "ReferenceServer"]
