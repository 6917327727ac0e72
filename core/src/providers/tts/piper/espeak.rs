//! espeak-ng text → IPA through the system library (`libespeak-ng.so.1`, opened at run time
//! with `libloading`, so building needs no headers).
//!
//! Why in-process: a clause costs ~0.1 ms here against ~8 ms for spawning the `espeak-ng`
//! CLI per sentence (Debian's 1.51, measured on this machine), and a library call has no
//! pipes to parse or processes to reap. espeak-ng keeps global state and is not
//! thread-safe, so one process-wide instance sits behind a mutex; a sentence's
//! phonemization holds it for well under a millisecond.
//!
//! Debian's 1.51 has no `espeak_TextToPhonemesWithTerminator`, only
//! `espeak_TextToPhonemes`, which loses which punctuation ended the clause: the caller
//! splits clauses itself ([`super::phonemize`]) and hands them over one at a time.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

use libloading::Library;

const LIBRARIES: [&str; 2] = ["libespeak-ng.so.1", "libespeak-ng.so"];
/// `ENOUTPUT_MODE_SYNCHRONOUS`: no audio device, nothing played.
const OUTPUT_SYNCHRONOUS: c_int = 0x0001;
/// `espeakCHARS_UTF8`.
const CHARS_UTF8: c_int = 1;
/// Phoneme mode bit 1: IPA as UTF-8 (what piper-phonemize passes, `0x02`).
const PHONEMES_IPA: c_int = 0x02;
const ENS_OK: u32 = 0;

type InitializePath = unsafe extern "C" fn(*const c_char);
type Initialize = unsafe extern "C" fn(*mut *mut c_void) -> u32;
type InitializeOutput = unsafe extern "C" fn(c_int, c_int, *const c_char) -> u32;
type StatusMessage = unsafe extern "C" fn(u32, *mut c_char, usize);
type ClearErrorContext = unsafe extern "C" fn(*mut *mut c_void);
type SetVoiceByName = unsafe extern "C" fn(*const c_char) -> c_int;
type TextToPhonemes = unsafe extern "C" fn(*mut *const c_void, c_int, c_int) -> *const c_char;

/// The process's espeak-ng.
pub struct Espeak {
    data_dir: Option<PathBuf>,
    state: Mutex<State>,
}

struct State {
    set_voice: SetVoiceByName,
    text_to_phonemes: TextToPhonemes,
    voice: Option<String>,
    // The function pointers above point into it: kept for the life of the process.
    _library: Library,
}

impl Espeak {
    /// Opens and initializes espeak-ng once per process. `data_dir` (holding `phontab`,
    /// directly or in `espeak-ng-data/`) replaces the library's built-in path; the first
    /// caller's choice holds for the process, and asking for another one is an error.
    pub fn get(data_dir: Option<&Path>) -> Result<&'static Espeak, String> {
        static ESPEAK: OnceLock<Result<Espeak, String>> = OnceLock::new();
        // Checked before the once-only start, so a wrong dir is not remembered.
        if let Some(dir) = data_dir {
            check_data_dir(dir)?;
        }
        let espeak = ESPEAK
            .get_or_init(|| Self::open(data_dir))
            .as_ref()
            .map_err(Clone::clone)?;
        if data_dir.is_some() && espeak.data_dir.as_deref() != data_dir {
            let current = espeak.data_dir.as_ref().map_or_else(
                || "its built-in data dir".to_string(),
                |dir| dir.display().to_string(),
            );
            return Err(format!(
                "espeak-ng already runs with {current} in this process (one per process)"
            ));
        }
        Ok(espeak)
    }

    fn open(data_dir: Option<&Path>) -> Result<Self, String> {
        let library = open_library()?;
        // SAFETY: the symbol types match espeak-ng 1.51's speak_lib.h / espeak_ng.h; the
        // library stays loaded for as long as the pointers are used (it lives in State).
        unsafe {
            let init_path: InitializePath = *symbol(&library, b"espeak_ng_InitializePath\0")?;
            let initialize: Initialize = *symbol(&library, b"espeak_ng_Initialize\0")?;
            let init_output: InitializeOutput = *symbol(&library, b"espeak_ng_InitializeOutput\0")?;
            let message: StatusMessage = *symbol(&library, b"espeak_ng_GetStatusCodeMessage\0")?;
            let clear: ClearErrorContext = *symbol(&library, b"espeak_ng_ClearErrorContext\0")?;
            let set_voice: SetVoiceByName = *symbol(&library, b"espeak_SetVoiceByName\0")?;
            let text_to_phonemes: TextToPhonemes = *symbol(&library, b"espeak_TextToPhonemes\0")?;

            // A path that does not exist silently falls back to the built-in one: it was
            // checked above.
            let path = data_dir
                .map(|p| CString::new(p.as_os_str().as_encoded_bytes()))
                .transpose()
                .map_err(|_| "espeak-ng data dir contains a NUL byte".to_string())?;
            init_path(path.as_ref().map_or(std::ptr::null(), |p| p.as_ptr()));
            let mut context: *mut c_void = std::ptr::null_mut();
            let status = initialize(&mut context);
            clear(&mut context);
            if status != ENS_OK {
                return Err(format!(
                    "espeak-ng cannot start: {}",
                    status_text(message, status)
                ));
            }
            let status = init_output(OUTPUT_SYNCHRONOUS, 0, std::ptr::null());
            if status != ENS_OK {
                return Err(format!(
                    "espeak-ng cannot start: {}",
                    status_text(message, status)
                ));
            }
            Ok(Self {
                data_dir: data_dir.map(Path::to_path_buf),
                state: Mutex::new(State {
                    set_voice,
                    text_to_phonemes,
                    voice: None,
                    _library: library,
                }),
            })
        }
    }

    /// Checks that espeak-ng has `voice` (so a typo fails at start, not on the first call).
    pub fn check_voice(&self, voice: &str) -> Result<(), String> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.select(voice)
    }

    /// IPA of `text` spoken with `voice`. espeak-ng translates one clause per call; a
    /// text it splits further comes back as its clauses joined by spaces.
    pub fn phonemes(&self, voice: &str, text: &str) -> Result<String, String> {
        let text = CString::new(text.replace('\0', " "))
            .map_err(|_| "text contains a NUL byte".to_string())?;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.select(voice)?;
        let mut out = String::new();
        let mut cursor = text.as_ptr().cast::<c_void>();
        // Each call consumes at least one byte; the bound only guards against a library
        // that stops advancing.
        for _ in 0..=text.as_bytes().len() {
            if cursor.is_null() {
                return Ok(out);
            }
            // SAFETY: `cursor` points into `text` (alive for the loop) or is what espeak
            // set it to (inside the same buffer); the result is a NUL-terminated string
            // in espeak's static buffer, copied before the lock is released.
            let phonemes =
                unsafe { (state.text_to_phonemes)(&mut cursor, CHARS_UTF8, PHONEMES_IPA) };
            if phonemes.is_null() {
                return Err("espeak-ng could not decode the text".into());
            }
            // SAFETY: non-null, NUL-terminated (see above).
            let clause = unsafe { CStr::from_ptr(phonemes) }.to_string_lossy();
            let clause = clause.trim();
            if !clause.is_empty() {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(clause);
            }
        }
        Err("espeak-ng did not finish the text".into())
    }
}

impl State {
    fn select(&mut self, voice: &str) -> Result<(), String> {
        if self.voice.as_deref() == Some(voice) {
            return Ok(());
        }
        let name = CString::new(voice).map_err(|_| format!("bad espeak voice {voice:?}"))?;
        // SAFETY: a NUL-terminated name; espeak copies what it needs.
        let result = unsafe { (self.set_voice)(name.as_ptr()) };
        if result != 0 {
            self.voice = None;
            return Err(format!(
                "espeak-ng has no voice {voice:?} (espeak-ng --voices lists them)"
            ));
        }
        self.voice = Some(voice.to_string());
        Ok(())
    }
}

fn open_library() -> Result<Library, String> {
    let mut errors = Vec::new();
    for name in LIBRARIES {
        // SAFETY: loading espeak-ng runs no initialization code with preconditions.
        match unsafe { Library::new(name) } {
            Ok(library) => return Ok(library),
            Err(e) => errors.push(format!("{name}: {e}")),
        }
    }
    Err(format!(
        "espeak-ng library not found ({}); install espeak-ng (apt-get install espeak-ng)",
        errors.join("; ")
    ))
}

/// # Safety
/// `T` must be the symbol's real type.
unsafe fn symbol<'l, T>(
    library: &'l Library,
    name: &[u8],
) -> Result<libloading::Symbol<'l, T>, String> {
    library.get(name).map_err(|e| {
        format!(
            "libespeak-ng has no {}: {e}",
            String::from_utf8_lossy(&name[..name.len().saturating_sub(1)])
        )
    })
}

fn status_text(message: StatusMessage, status: u32) -> String {
    let mut buffer = [0 as c_char; 512];
    // SAFETY: espeak writes at most `len` bytes including the NUL.
    unsafe { message(status, buffer.as_mut_ptr(), buffer.len()) };
    // SAFETY: NUL-terminated within the buffer (zeroed, and espeak terminates it).
    let text = unsafe { CStr::from_ptr(buffer.as_ptr()) }.to_string_lossy();
    format!("{text} (status {status:#x})")
}

/// espeak-ng looks for `phontab` in `dir/espeak-ng-data/` then in `dir/`.
fn check_data_dir(dir: &Path) -> Result<(), String> {
    if dir.join("espeak-ng-data").join("phontab").is_file() || dir.join("phontab").is_file() {
        Ok(())
    } else {
        Err(format!(
            "espeak-ng data dir {} has no phontab (nor espeak-ng-data/phontab)",
            dir.display()
        ))
    }
}
