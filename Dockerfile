# One image for every podq service; compose.yaml picks the command.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY podq podq
COPY shared shared
COPY broker broker
COPY workers workers
COPY watcher watcher
COPY kubesim kubesim
RUN pip install --no-cache-dir -c constraints.txt . && useradd --uid 10001 podq
USER 10001
ENTRYPOINT ["podq"]
