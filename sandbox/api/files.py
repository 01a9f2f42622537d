"""Files: photos, videos, documents, voices, audio and animations by upload, file_id or URL,
and getFile (the bytes are served at ``/file/bot<token>/<file_path>``)."""

from __future__ import annotations

from typing import Any

from sandbox.api.messages import CAPTION_LIMIT, MessagesApi
from sandbox.core import bad
from sandbox.spec import FileUpload
from sandbox.state import StoredFile, new_id


class FilesApi(MessagesApi):
    def reset(self) -> None:
        super().reset()
        self.files: dict[str, StoredFile] = {}

    def file_by_path(self, path: str) -> StoredFile | None:
        return next((f for f in self.files.values() if f.file_path == path), None)

    def store_upload(
        self, upload: FileUpload, kind: str, default_name: str | None = None
    ) -> StoredFile:
        """An uploaded file (by the bot or by a user), kept under a new file_id that either
        can send again."""
        stored = StoredFile(
            file_id=new_id(kind[:2].upper() + "Aa", 24),
            file_unique_id=new_id("", 8),
            data=upload.data,
            kind=kind,
            file_name=upload.filename or default_name,
            mime_type=upload.content_type or None,
        )
        self.files[stored.file_id] = stored
        return stored

    def input_file(self, value: Any, kind: str, default_name: str | None = None) -> StoredFile:
        if isinstance(value, FileUpload):
            return self.store_upload(value, kind, default_name)
        if isinstance(value, str):
            if value in self.files:
                return self.files[value]
            if value.startswith(("http://", "https://")):
                stored = StoredFile(
                    new_id("URL", 24), new_id("", 8), b"", kind, value.rsplit("/")[-1]
                )
                self.files[stored.file_id] = stored
                return stored
            if value.startswith("attach://"):
                raise bad("can't use attach:// outside of a media group")
        raise bad("wrong file identifier/HTTP URL specified")

    def media_object(self, f: StoredFile, kind: str, params: dict[str, Any]) -> Any:
        # A file sent again by file_id keeps the size and length it was first sent with.
        for key in ("width", "height", "duration"):
            if params.get(key):
                f.facts.setdefault(key, params[key])
        p = f.facts
        base: dict[str, Any] = {"file_id": f.file_id, "file_unique_id": f.file_unique_id}
        if f.data:
            base["file_size"] = len(f.data)
        if kind == "photo":
            return [dict(base, width=p.get("width") or 800, height=p.get("height") or 600)]
        if kind == "video":
            base.update(width=p.get("width") or 1280, height=p.get("height") or 720)
            base["duration"] = p.get("duration") or 0
        elif kind == "voice":
            base["duration"] = p.get("duration") or 0
        elif kind in ("document", "audio", "animation"):
            if f.file_name:
                base["file_name"] = f.file_name
            if kind == "audio":
                base["duration"] = p.get("duration") or 0
            if kind == "animation":
                base.update(width=320, height=240, duration=p.get("duration") or 0)
        if f.mime_type and kind != "photo":
            base["mime_type"] = f.mime_type
        return base

    async def _send_media(self, kind: str, p: dict[str, Any]) -> Any:
        chat = self.writable_chat(p["chat_id"])
        f = self.input_file(p[kind], kind)
        body: dict[str, Any] = {kind: self.media_object(f, kind, p)}
        body.update(self.text_body(p, "caption", CAPTION_LIMIT))
        return self.bot_sends(p, body, chat)

    async def api_sendPhoto(self, p: dict[str, Any]) -> Any:
        return await self._send_media("photo", p)

    async def api_sendVideo(self, p: dict[str, Any]) -> Any:
        return await self._send_media("video", p)

    async def api_sendDocument(self, p: dict[str, Any]) -> Any:
        return await self._send_media("document", p)

    async def api_sendVoice(self, p: dict[str, Any]) -> Any:
        return await self._send_media("voice", p)

    async def api_sendAudio(self, p: dict[str, Any]) -> Any:
        return await self._send_media("audio", p)

    async def api_sendAnimation(self, p: dict[str, Any]) -> Any:
        return await self._send_media("animation", p)

    async def api_getFile(self, p: dict[str, Any]) -> Any:
        f = self.files.get(p["file_id"])
        if f is None:
            raise bad("invalid file_id")
        out: dict[str, Any] = {
            "file_id": f.file_id,
            "file_unique_id": f.file_unique_id,
            "file_path": f.file_path,
        }
        if f.data:
            out["file_size"] = len(f.data)
        return out


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, GIF or JPEG (what a Telegram app reports for a photo)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    # Walk the segments to a start-of-frame marker (SOF0..SOF15 but DHT, JPG and DAC).
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return int.from_bytes(data[i + 7 : i + 9], "big"), int.from_bytes(
                data[i + 5 : i + 7], "big"
            )
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None
