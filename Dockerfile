# One image for every podq service, made from the wheel `make dist` builds (the artifact a release
# ships); compose.yaml and deploy/kubernetes pick the command:
#   make dist && docker build -t REGISTRY/podq:VERSION .
FROM python:3.11-slim
COPY constraints.txt /tmp/podq/
COPY dist/ /tmp/podq/dist/
RUN pip install --no-cache-dir -c /tmp/podq/constraints.txt --find-links /tmp/podq/dist podq \
    && rm -rf /tmp/podq && useradd --uid 10001 podq
USER 10001
ENTRYPOINT ["podq"]
