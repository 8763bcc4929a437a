"""`python -m services.notifier`: run the notifier in the foreground until SIGINT/SIGTERM."""

from services.notifier.settings import NotifierSettings
from services.notifier.wiring import build_notifier
from shared.runtime import run_service
from shared.settings import load_settings


def main() -> None:
    settings = load_settings(NotifierSettings)
    run_service(build_notifier(settings), settings, "notifier")


if __name__ == "__main__":
    main()
