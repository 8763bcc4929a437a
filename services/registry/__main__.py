"""`python -m services.registry`: run the registry service in the foreground."""

from services.registry.settings import RegistrySettings
from services.registry.wiring import build_registry
from shared.runtime import run_service
from shared.settings import load_settings


def main() -> None:
    settings = load_settings(RegistrySettings)
    run_service(build_registry(settings), settings, "registry")


if __name__ == "__main__":
    main()
