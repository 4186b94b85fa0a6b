# The Roundtable app image (Hugging Face Space, Docker SDK). Finished in the shipping issue.
ARG BASE=python:3.11-slim
FROM ${BASE}
RUN useradd -m -u 1000 user
USER user
ENV HOME=/home/user PATH=/home/user/.local/bin:$PATH PYTHONUNBUFFERED=1
WORKDIR /home/user/app
COPY --chown=user pyproject.toml README.md ./
COPY --chown=user . .
RUN pip install --no-cache-dir --user .
EXPOSE 7860
CMD ["chainlit", "run", "chainlit_app.py", "--headless", "--host", "0.0.0.0", "--port", "7860"]
