# findimage with the CPU build of torch: the `findimage` command line and the Slack bot.
# Built by `docker compose build` (see docker-compose.yml), or on its own:
#   docker build -t findimage . && docker run --rm findimage findimage --help
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# torch first, from PyTorch's CPU wheel index: PyPI's torch for Linux is the multi-GB CUDA build.
RUN pip install "torch>=2.4" --index-url https://download.pytorch.org/whl/cpu

WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY findimage ./findimage
COPY bot ./bot
COPY handlers ./handlers
COPY indexer ./indexer
COPY web ./web
RUN pip install .

# Run as a user of its own. The models are downloaded once into /models, a volume in
# docker-compose.yml, and exported for ONNX Runtime once beside them, so a new container
# (each `docker compose run`) neither fetches nor exports them again.
RUN useradd --create-home findimage && mkdir /models && chown findimage /models
USER findimage
WORKDIR /home/findimage
ENV HF_HOME=/models \
    FINDIMAGE_MODEL_CACHE=/models/findimage
EXPOSE 3000
CMD ["findimage", "serve"]
