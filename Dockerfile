# narrwatch + Apache Airflow 3 in one image: the api-server, scheduler, dag-processor and triggerer
# services of docker-compose.yml and the one-shot migrate service all run it.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# curl for the healthchecks; nothing else from apt (psycopg comes as a binary wheel).
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/*

# Airflow's images use uid 50000; keep it so volumes move between the two without chown.
RUN useradd --create-home --uid 50000 --gid 0 airflow

WORKDIR /opt/narrwatch

# torch first, from PyTorch's CPU index: PyPI's torch==2.13.0 is the CUDA build (several GB and
# 16 nvidia-* packages). 2.13.0+cpu satisfies the project's torch==2.13.0 pin, so the install of the
# project below keeps it.
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0"

COPY pyproject.toml README.md ./
# narrwatch/db and narrwatch/embeddings are links to the top-level db/ and embeddings/.
COPY narrwatch ./narrwatch
COPY db ./db
COPY embeddings ./embeddings
RUN pip install ".[airflow,postgres]" \
    && python -c "import torch, sys; sys.exit('CUDA torch in the image' if torch.version.cuda else 0)" \
    && ! pip list 2>/dev/null | grep -qi '^nvidia-'

COPY dags ./dags
COPY narratives ./narratives
COPY feeds.yaml ./feeds.yaml

ENV AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/narrwatch/dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    NARRWATCH_DATA_DIR=/var/lib/narrwatch \
    NARRWATCH_FEEDS_FILE=/opt/narrwatch/feeds.yaml \
    NARRWATCH_NARRATIVES_DIR=/opt/narrwatch/narratives

# Named volumes take the owner of the folder they are mounted on, so create them here.
RUN mkdir -p /opt/airflow/logs /opt/airflow/auth /var/lib/narrwatch/reports \
    && chown -R airflow:0 /opt/airflow /var/lib/narrwatch

USER airflow
# The services give their own command (`airflow scheduler`, `narrwatch db upgrade`, ...).
CMD ["narrwatch", "--help"]
