"""thalo.registry: publish, verify and resolve aggregate modules by semantic version."""

from thalo.registry.registry import ModuleRecord as ModuleRecord
from thalo.registry.registry import Registry as Registry
from thalo.registry.registry import check_version as check_version
from thalo.registry.requirement import Requirement as Requirement
from thalo.registry.requirement import Version as Version
from thalo.registry.requirement import parse_version as parse_version

__all__ = ["ModuleRecord", "Registry", "Requirement", "Version", "check_version", "parse_version"]
