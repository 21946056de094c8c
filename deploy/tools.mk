# Deployment tooling, included by the Makefile (`include deploy/tools.mk`).
# `make test` depends on `deploy-tools`: the chart and rule tests run the real
# Helm, promtool and Prometheus that these targets install into .cache/tools.

HELM_VERSION := v3.19.0
HELM := .cache/tools/bin/helm
PROMETHEUS_BIN := .cache/tools/prometheus/usr/bin
PROMTOOL := $(PROMETHEUS_BIN)/promtool

helm: ## install the pinned Helm (built from its Go module) into .cache/tools
	@HELM_VERSION=$(HELM_VERSION) deploy/tools/install-helm.sh >/dev/null

promtool: ## install Prometheus and promtool (Debian's package, unpacked) into .cache/tools
	@deploy/tools/install-prometheus.sh >/dev/null

deploy-tools: helm promtool ## everything the deploy tests need

chromium: ## install Debian's chromium, the browser the funnel page's Playwright test drives
	@deploy/tools/install-chromium.sh >/dev/null

compose: ## install the pinned Docker Compose (built from its Go module) into .cache/tools, for deploy/compose
	@deploy/tools/install-compose.sh >/dev/null

deploy-generate: venv helm ## regenerate the chart's topic list (from the code) and the alert rules (from the chart)
	$(PY) -m tests.deploy.chart

deploy-check: deploy-tools ## quick checks without pytest: helm lint, promtool rule checks and unit tests
	$(HELM) lint --strict deploy/helm/leadflow
	$(HELM) lint --strict deploy/helm/leadflow -f deploy/helm/leadflow/values-production.yaml
	$(PROMTOOL) check rules deploy/prometheus/rules/*.yaml
	$(PROMTOOL) test rules deploy/prometheus/tests/*.yaml

.PHONY: helm promtool deploy-tools chromium compose deploy-generate deploy-check
