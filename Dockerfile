# One image, three services: voice-bridge, turn-api, call-insights.
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libopus-dev pkg-config python3-pip unzip \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p voice-bridge -p turn-api -p call-insights
# Silero VAD, Smart Turn and ONNX Runtime, from pinned PyPI wheels (checked against SHA256SUMS).
RUN models/fetch

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libopus0 espeak-ng \
    && rm -rf /var/lib/apt/lists/* && useradd --system --home /var/lib/voice-ai voice-ai
COPY --from=build /src/target/release/voice-bridge /src/target/release/turn-api /src/target/release/call-insights /usr/local/bin/
COPY --from=build /src/models /opt/voice-ai/models
ENV VOICE_MODELS_DIR=/opt/voice-ai/models
COPY prompts/pt-BR /opt/voice-ai/prompts/pt-BR
ENV VOICE_PROMPTS_DIR=/opt/voice-ai/prompts/pt-BR
USER voice-ai
WORKDIR /var/lib/voice-ai
