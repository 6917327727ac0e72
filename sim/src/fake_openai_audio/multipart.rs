//! A strict `multipart/form-data` reader (RFC 7578) for the transcription upload: the
//! boundary from the Content-Type, CRLF line ends, a `Content-Disposition: form-data;
//! name=…` on every part, no field twice (save `name[]` arrays), and the closing `--boundary--`.

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

/// The boundary of a `multipart/form-data` Content-Type.
pub(crate) fn boundary(content_type: &str) -> Result<String, String> {
    let mut pieces = content_type.split(';');
    let mime = pieces.next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("multipart/form-data") {
        return Err(format!("expected multipart/form-data, got {mime:?}"));
    }
    for piece in pieces {
        if let Some((key, value)) = piece.split_once('=') {
            if key.trim().eq_ignore_ascii_case("boundary") {
                let value = value.trim().trim_matches('"');
                if value.is_empty() || value.len() > 70 {
                    return Err("invalid multipart boundary".into());
                }
                return Ok(value.to_string());
            }
        }
    }
    Err("multipart/form-data without a boundary".into())
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    (from..=haystack.len() - needle.len()).find(|&i| &haystack[i..i + needle.len()] == needle)
}

/// Every part of `body`, in order.
pub(crate) fn parse(body: &[u8], boundary: &str) -> Result<Vec<Part>, String> {
    let open = format!("--{boundary}\r\n");
    if !body.starts_with(open.as_bytes()) {
        return Err("the body does not start with the boundary".into());
    }
    let delimiter = format!("\r\n--{boundary}");
    let mut parts: Vec<Part> = Vec::new();
    let mut pos = open.len();
    loop {
        let end =
            find(body, delimiter.as_bytes(), pos).ok_or("a part is not closed by the boundary")?;
        let part = part(&body[pos..end])?;
        // Arrays repeat their `name[]` field (the SDK's "brackets" encoding); nothing else may.
        let array = part.name.ends_with("[]");
        if !array && parts.iter().any(|p| p.name == part.name) {
            return Err(format!("field {:?} sent twice", part.name));
        }
        parts.push(part);
        let after = end + delimiter.len();
        let rest = &body[after..];
        if rest.starts_with(b"--") {
            let tail = &rest[2..];
            if !(tail.is_empty() || tail == b"\r\n") {
                return Err("bytes after the closing boundary".into());
            }
            return Ok(parts);
        }
        if !rest.starts_with(b"\r\n") {
            return Err("a boundary is not followed by CRLF".into());
        }
        pos = after + 2;
    }
}

fn part(raw: &[u8]) -> Result<Part, String> {
    let split = find(raw, b"\r\n\r\n", 0).ok_or("a part has no blank line after its headers")?;
    let headers =
        std::str::from_utf8(&raw[..split]).map_err(|_| "part headers are not UTF-8".to_string())?;
    let mut disposition = None;
    let mut content_type = None;
    for line in headers.split("\r\n") {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("bad part header line {line:?}"))?;
        match name.trim().to_ascii_lowercase().as_str() {
            "content-disposition" => disposition = Some(value.trim().to_string()),
            "content-type" => content_type = Some(value.trim().to_string()),
            _ => {}
        }
    }
    let disposition = disposition.ok_or("a part has no Content-Disposition")?;
    let mut pieces = disposition.split(';');
    if pieces.next().map(str::trim) != Some("form-data") {
        return Err(format!(
            "Content-Disposition is not form-data: {disposition:?}"
        ));
    }
    let (mut name, mut filename) = (None, None);
    for piece in pieces {
        let Some((key, value)) = piece.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"').to_string();
        match key.trim() {
            "name" => name = Some(value),
            "filename" => filename = Some(value),
            _ => {}
        }
    }
    let name = name.filter(|n| !n.is_empty()).ok_or("a part has no name")?;
    Ok(Part {
        name,
        filename,
        content_type,
        data: raw[split + 4..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\
        \r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\
        Content-Type: audio/wav\r\n\r\nRIFF\r\n--\r\n--XyZ--\r\n";

    #[test]
    fn reads_fields_and_files() {
        assert_eq!(
            boundary("multipart/form-data; boundary=XyZ").unwrap(),
            "XyZ"
        );
        assert_eq!(
            boundary("Multipart/Form-Data; boundary=\"q\"").unwrap(),
            "q"
        );
        let parts = parse(BODY, "XyZ").unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            (parts[0].name.as_str(), parts[0].data.as_slice()),
            ("model", &b"whisper-1"[..])
        );
        assert_eq!(parts[1].filename.as_deref(), Some("a.wav"));
        assert_eq!(parts[1].content_type.as_deref(), Some("audio/wav"));
        assert_eq!(parts[1].data, b"RIFF\r\n--");
    }

    #[test]
    fn array_fields_may_repeat() {
        let body =
            b"--XyZ\r\nContent-Disposition: form-data; name=\"g[]\"\r\n\r\nword\r\n--XyZ\r\n\
            Content-Disposition: form-data; name=\"g[]\"\r\n\r\nsegment\r\n--XyZ--\r\n";
        let parts = parse(body, "XyZ").unwrap();
        let values: Vec<&[u8]> = parts.iter().map(|p| p.data.as_slice()).collect();
        assert_eq!(values, [&b"word"[..], &b"segment"[..]]);
    }

    #[test]
    fn refuses_what_is_not_well_formed() {
        assert!(boundary("application/json").is_err());
        assert!(boundary("multipart/form-data").is_err());
        let bad: [&[u8]; 5] = [
            b"--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nx",
            b"junk--XyZ\r\nContent-Disposition: form-data; name=\"m\"\r\n\r\nx\r\n--XyZ--",
            b"--XyZ\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ--",
            b"--XyZ\r\nContent-Disposition: form-data; name=\"m\"\r\n\r\nx\r\n--XyZ\r\n\
              Content-Disposition: form-data; name=\"m\"\r\n\r\ny\r\n--XyZ--",
            b"--XyZ\r\nContent-Disposition: attachment; name=\"m\"\r\n\r\nx\r\n--XyZ--",
        ];
        for body in bad {
            assert!(
                parse(body, "XyZ").is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
