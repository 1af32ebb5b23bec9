"""The S3 backends' settings (``CCML_S3_*``), importable without boto3.

The registry names these classes by dotted path (``ccml.core.registry``): the data source
(and event-driven retraining, whatever the store) reads ``S3Settings``; the model store reads
``S3StoreSettings``, the same variables with ``CCML_S3_BUCKET`` required.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from ccml.core.backend_settings import BackendSettings


class S3Settings(BackendSettings):
    """``CCML_S3_*``: the bucket whose new objects may train, its prefixes, and the largest object trained on."""

    model_config = SettingsConfigDict(env_prefix="CCML_S3_")

    bucket: str | None = Field(None, description="Bucket of the S3 model store and incoming data (CCML_STORAGE=s3).")
    data_prefix: str = Field("incoming/", description="Key prefix where new training CSVs land.")
    model_prefix: str = Field("models/", description="Key prefix of the model store in the bucket.")
    max_data_bytes: Annotated[int, Field(ge=1)] = Field(
        2 * 1024**3, description="Larger training objects are refused (train them as a container task)."
    )

    @model_validator(mode="after")
    def _prefixes_apart(self) -> S3Settings:
        # The store's own writes would announce new objects under the data prefix, and retrain forever.
        if self.model_prefix.strip("/") and self.data_prefix.startswith(self.model_prefix):
            raise ValueError("CCML_S3_DATA_PREFIX must not lie under CCML_S3_MODEL_PREFIX (retraining would loop)")
        return self


class S3StoreSettings(S3Settings):
    """The S3 model store's settings: ``S3Settings`` with the bucket required."""

    bucket: str = Field(description="Bucket of the S3 model store and incoming data (CCML_STORAGE=s3).")
