"""`python -m services.registry`: run the registry service in the foreground."""

from services.registry.screening import ScreeningConfigError
from services.registry.settings import RegistrySettings
from services.registry.wiring import build_registry
from shared.runtime import run_service
from shared.settings import SettingsError, load_settings


def main() -> None:
    settings = load_settings(RegistrySettings)
    try:
        service = build_registry(settings)
    except ScreeningConfigError as error:
        raise SettingsError(f"ombudsdesk: invalid screening configuration (OMBUDSDESK_SCREENING_CONFIG_PATH): {error}")
    run_service(service, settings, "registry")


if __name__ == "__main__":
    main()
