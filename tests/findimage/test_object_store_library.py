"""A library in an S3-compatible bucket (moto's S3 server on 127.0.0.1): indexed from its
listing, searched, kept in line as objects change, previewed, and one sentence for each
way the service can refuse."""

from __future__ import annotations

import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest
import requests
from PIL import Image

from bot.previews import PreviewEndpoint, PreviewSigner, render_preview
from findimage.errors import ImageError
from findimage.library import ObjectStoreLibrary
from tests.support.cli import findimage, json_in_process, run_in_process
from tests.support.pictures import draw_shape, encode, gradient
from tests.support.s3 import S3Service, credentials_env, moto_s3, moto_s3_with_iam

BUCKET = "team-pictures"
PREFIX = "library/photos"
URL = f"s3://{BUCKET}/{PREFIX}"


def _jpeg(number: int) -> bytes:
    picture = draw_shape(["red", "green", "blue"][number % 3], "square", size=(64 + number, 64))
    picture.paste(gradient((16, 16), seed=number), (0, 0))
    return encode(picture, "JPEG")


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Service]:
    for name, value in credentials_env().items():
        monkeypatch.setenv(name, value)
    with moto_s3() as service:
        service.client().create_bucket(Bucket=BUCKET)
        yield service


@pytest.fixture
def bucket_library(
    s3: S3Service, findimage_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> S3Service:
    """Six pictures under the prefix, and what the walk must leave out beside them."""
    for number in range(6):
        folder = "trips" if number % 2 else "office"
        s3.put(BUCKET, f"{PREFIX}/{folder}/{number:02d}.jpg", _jpeg(number))
    s3.put(BUCKET, f"{PREFIX}/notes.txt", b"not a picture", "text/plain")
    s3.put(BUCKET, f"{PREFIX}/.trash/old.jpg", _jpeg(40))
    s3.put(BUCKET, "elsewhere/outside.jpg", _jpeg(41))
    monkeypatch.setenv("FINDIMAGE_LIBRARY", URL)
    monkeypatch.setenv("FINDIMAGE_S3_ENDPOINT_URL", s3.endpoint_url)
    return s3


def test_a_bucket_is_indexed_searched_and_kept_in_line_with_its_objects(
    bucket_library: S3Service, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    report = json_in_process(capsys, "index")
    assert (report["indexed"], report["skipped"]) == (6, [])
    assert json_in_process(capsys, "status")["library"] == URL

    query = tmp_path / "query.jpg"
    query.write_bytes(_jpeg(3))
    (top,) = json_in_process(capsys, "search", "--image", str(query), "-k", "1")["results"]
    assert top["path"] == "trips/03.jpg" and top["score"] > 0.99
    assert top["location"] == f"{URL}/trips/03.jpg"

    assert json_in_process(capsys, "index")["unchanged"] == 6
    bucket_library.put(BUCKET, f"{PREFIX}/trips/03.jpg", _jpeg(30))
    bucket_library.client().delete_object(Bucket=BUCKET, Key=f"{PREFIX}/office/00.jpg")
    bucket_library.put(BUCKET, f"{PREFIX}/new/06.jpg", _jpeg(6))
    report = json_in_process(capsys, "index")
    assert (report["indexed"], report["deleted"], report["unchanged"]) == (2, 1, 4)
    (moved,) = json_in_process(capsys, "search", "--image", str(query), "-k", "1")["results"]
    assert moved["path"] != "trips/03.jpg" or moved["score"] < 0.99


def test_an_object_over_the_size_limit_is_skipped_with_its_reason(
    bucket_library: S3Service, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket_library.put(BUCKET, f"{PREFIX}/huge.jpg", b"\xff\xd8" + b"0" * 300_000)
    monkeypatch.setenv("FINDIMAGE_MAX_FILE_MB", "0.2")
    report = json_in_process(capsys, "index")
    assert report["indexed"] == 6
    [(path, reason)] = [(s["path"], s["reason"]) for s in report["skipped"]]
    assert path == "huge.jpg" and "over the 0 MB limit" in reason


def test_an_object_that_grew_after_it_was_listed_is_refused_without_fetching_it_whole(
    s3: S3Service,
) -> None:
    picture = _jpeg(1)
    s3.put(BUCKET, f"{PREFIX}/growing.jpg", picture)
    library = ObjectStoreLibrary(URL, s3.endpoint_url)
    listed = {stored.relative_path: stored.size for stored in library.objects()}
    assert listed == {"growing.jpg": len(picture)}
    assert s3.fetched is not None
    # Exactly the limit is read, and only it.
    s3.fetched.reset()
    assert library.read("growing.jpg", max_bytes=len(picture)) == picture
    assert s3.fetched.body_bytes <= len(picture) + 1
    # Grown to 2 MB since the listing: refused, having fetched at most the limit and a byte.
    s3.put(BUCKET, f"{PREFIX}/growing.jpg", picture + b"\0" * 2_000_000)
    s3.fetched.reset()
    with pytest.raises(ImageError, match="FINDIMAGE_MAX_FILE_MB"):
        library.read("growing.jpg", max_bytes=len(picture))
    assert s3.fetched.body_bytes <= len(picture) + 1


def test_previews_redirect_to_presigned_links_or_are_read_through_the_library(
    bucket_library: S3Service,
) -> None:
    library = ObjectStoreLibrary(URL, bucket_library.endpoint_url)
    signer = PreviewSigner("preview-key", ttl_seconds=600)
    endpoint = PreviewEndpoint(
        {"doc": "trips/01.jpg"}.get, library, signer, 10 * 1024 * 1024, cache_seconds=600
    )
    expires, signature = signer.sign("doc")
    status, headers, _ = endpoint.respond("GET", "/images/doc", f"exp={expires}&sig={signature}")
    assert status == "302 Found"
    fetched = requests.get(dict(headers)["Location"], timeout=10)
    assert fetched.status_code == 200
    assert fetched.headers["Content-Type"] == "image/jpeg"
    assert fetched.content == _jpeg(1)
    # Upload mode: a downscaled JPEG made from the object itself.
    preview = Image.open(io.BytesIO(render_preview(library, "trips/01.jpg", 10 * 1024 * 1024)))
    assert preview.format == "JPEG"
    assert not library.exists("../elsewhere/outside.jpg")


def test_a_missing_bucket_or_an_unreachable_service_is_one_sentence(
    s3: S3Service,
    findimage_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FINDIMAGE_S3_ENDPOINT_URL", s3.endpoint_url)
    code, out, err = run_in_process(capsys, "index", "s3://no-such-bucket/pictures")
    assert (code, out) == (2, "")
    assert err.startswith("findimage: The bucket no-such-bucket does not exist")
    assert err.count("\n") == 1

    monkeypatch.setenv("FINDIMAGE_S3_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    code, _, err = run_in_process(capsys, "index", URL)
    assert code == 1
    assert "Could not reach the S3 service" in err and err.count("\n") == 1


def test_no_credentials_and_access_denied_are_one_sentence_without_the_secret(
    findimage_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in credentials_env().items():
        monkeypatch.setenv(name, value)
    # Three requests set up a user without rights, and the bucket; every later one is checked.
    with moto_s3_with_iam(setup_requests=3) as service:
        admin = {
            "endpoint_url": service.endpoint_url,
            "aws_access_key_id": "admin-key",
            "aws_secret_access_key": "admin-secret",
            "region_name": "us-east-1",
        }
        users = boto3.client("iam", **admin)
        users.create_user(UserName="intern")
        key = users.create_access_key(UserName="intern")["AccessKey"]
        boto3.client("s3", **admin).create_bucket(Bucket=BUCKET)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        monkeypatch.setenv("FINDIMAGE_S3_ENDPOINT_URL", service.endpoint_url)

        code, out, err = run_in_process(capsys, "index", URL, "-v")
        assert code == 1
        assert f"findimage: Access to {URL} was denied" in err
        assert key["SecretAccessKey"] not in err + out

        # Without credentials s3fs asks anonymously, which a private bucket refuses too.
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
        code, _, err = run_in_process(capsys, "index", URL)
    assert code == 1
    assert err == (
        f"findimage: No credentials to read {URL}: set AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE).\n"
    )


@pytest.mark.slow
def test_a_bucket_of_a_thousand_objects_is_listed_by_pages_and_indexed_once(
    s3: S3Service,
    findimage_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ListObjectsV2 returns at most 1,000 keys a page
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html): with five
    sidecar files beside the pictures, the listing takes two pages."""
    client = s3.client()
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda n: client.put_object(
                    Bucket=BUCKET, Key=f"{PREFIX}/{n // 100:02d}/{n:04d}.jpg", Body=_jpeg(n % 40)
                ),
                range(1000),
            )
        )
    for n in range(5):
        s3.put(BUCKET, f"{PREFIX}/00/{n:04d}.xmp", b"<x:xmpmeta/>", "application/rdf+xml")
    monkeypatch.setenv("FINDIMAGE_S3_ENDPOINT_URL", s3.endpoint_url)
    report = json_in_process(capsys, "index", URL)
    assert (report["indexed"], report["skipped"]) == (1000, [])
    assert json_in_process(capsys, "status")["count"] == 1000
    assert json_in_process(capsys, "index", URL)["unchanged"] == 1000


def test_a_wrong_secret_an_unknown_key_and_a_bad_bucket_name_each_name_their_cause(
    findimage_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """In a child process, as a user sees it: one sentence each, and no WARNING line first."""
    for name, value in credentials_env().items():
        monkeypatch.setenv(name, value)
    with moto_s3_with_iam(setup_requests=3) as service:
        admin = {
            "endpoint_url": service.endpoint_url,
            "aws_access_key_id": "admin-key",
            "aws_secret_access_key": "admin-secret",
            "region_name": "us-east-1",
        }
        users = boto3.client("iam", **admin)
        users.create_user(UserName="intern")
        key = users.create_access_key(UserName="intern")["AccessKey"]
        boto3.client("s3", **admin).create_bucket(Bucket=BUCKET)
        monkeypatch.setenv("FINDIMAGE_S3_ENDPOINT_URL", service.endpoint_url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        wrong_secret = "not-" + key["SecretAccessKey"]
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", wrong_secret)
        done = findimage("index", URL, env={}, cwd=tmp_path)
        assert (done.returncode, done.stdout) == (1, "")
        assert done.stderr == (
            f"findimage: The S3 service refused the credentials for {URL}: the secret key does "
            "not go with the access key; check AWS_SECRET_ACCESS_KEY.\n"
        )

        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIANOSUCHKEY0000000")
        done = findimage("index", URL, env={}, cwd=tmp_path)
        assert (done.returncode, done.stderr) == (
            1,
            f"findimage: The S3 service does not know the access key used for {URL}: check "
            "AWS_ACCESS_KEY_ID (or AWS_PROFILE).\n",
        )
        assert wrong_secret not in done.stderr

        done = findimage("index", "s3://Team_Pictures!/photos", env={}, cwd=tmp_path)
        assert (done.returncode, done.stderr) == (
            2,
            "findimage: Team_Pictures! is not a valid bucket name (S3 bucket names are 3 to 63 "
            "lowercase letters, digits, dots and hyphens): check the s3:// location.\n",
        )


def test_an_ignore_file_at_the_prefix_keeps_its_objects_out_and_removes_them_when_added(
    bucket_library: S3Service, capsys: pytest.CaptureFixture[str]
) -> None:
    """`.findimageignore` at s3://bucket/prefix/ is read as a folder library's is (gitignore
    syntax); pictures it names that were indexed before leave the index. Before: ignored."""
    bucket_library.put(BUCKET, f"{PREFIX}/trips/draft.tmp.jpg", _jpeg(7))
    # The same name outside the prefix is not this library's ignore file.
    bucket_library.put(BUCKET, ".findimageignore", b"trips/\n", "text/plain")
    assert json_in_process(capsys, "index")["indexed"] == 7
    bucket_library.put(BUCKET, f"{PREFIX}/.findimageignore", b"office/\n*.tmp.jpg\n", "text/plain")
    report = json_in_process(capsys, "index")
    assert (report["indexed"], report["deleted"], report["unchanged"]) == (0, 4, 3)
    assert json_in_process(capsys, "status")["count"] == 3
    bucket_library.client().delete_object(Bucket=BUCKET, Key=f"{PREFIX}/.findimageignore")
    assert json_in_process(capsys, "index")["indexed"] == 4
