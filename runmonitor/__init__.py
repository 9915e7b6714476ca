"""RunMonitor: start and watch runs on remote data-pipeline services."""

__version__ = "0.1.0"
APP_ID = "io.github.runmonitor.RunMonitor"
APP_NAME = "RunMonitor"
