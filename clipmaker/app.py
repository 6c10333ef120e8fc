"""The Ray Serve application: the HTTP ingress, which also makes sure the workers run.

``serve run clipmaker.app:app`` (or a config in deployments/) deploys it with settings from
the environment; ``build_app(settings)`` binds explicit settings (the CLI and the tests).
"""

from __future__ import annotations

from ray import serve
from ray.serve import Application

from clipmaker.api.deps import install_services
from clipmaker.api.main import api
from clipmaker.jobs.db import migrate
from clipmaker.logs import configure_logging
from clipmaker.services import Services
from clipmaker.settings import Settings
from clipmaker.workers import ensure_worker_pool


@serve.deployment(
    ray_actor_options={"num_cpus": 0},  # I/O only: the CPUs belong to the workers
    max_ongoing_requests=64,
)
@serve.ingress(api)
class Ingress:
    """Validates, records and enqueues; never runs media work itself."""

    def __init__(self, settings: Settings | None = None) -> None:
        configure_logging()
        settings = settings or Settings()
        migrate(settings.resolved_database_url)
        self.services = Services.connect(settings)
        install_services(self.services)
        ensure_worker_pool(settings)

    def __del__(self) -> None:
        services = getattr(self, "services", None)
        if services is not None:
            services.close()


def build_app(settings: Settings | None = None) -> Application:
    return Ingress.bind(settings)


app = build_app()
