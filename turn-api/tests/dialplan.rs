//! The FreeSWITCH dialplan examples (dialplan/*.xml) and module configuration
//! (freeswitch/autoload_configs/*.xml): well-formed XML, and every AI extension sets what
//! its mode needs (realtime: the bridge URL with the tenant and the call, the domain_uuid in
//! the metadata, something writing frames or parking; turn-based: the turn-api settings,
//! the domain context, and a Lua script that exists).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn xml_files(dir: &str) -> Vec<(PathBuf, String)> {
    let mut files: Vec<_> = std::fs::read_dir(root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect();
    files.sort();
    files
}

/// One `<extension>`: its name, number pattern and actions (application, data).
struct Extension {
    file: String,
    name: String,
    number: String,
    actions: Vec<(String, String)>,
}

impl Extension {
    fn sets(&self) -> HashMap<&str, &str> {
        self.actions
            .iter()
            .filter(|(app, _)| app == "set")
            .filter_map(|(_, data)| data.split_once('='))
            .collect()
    }

    fn apps(&self) -> Vec<&str> {
        self.actions.iter().map(|(a, _)| a.as_str()).collect()
    }
}

fn extensions() -> Vec<Extension> {
    let mut out = Vec::new();
    for (path, text) in xml_files("dialplan") {
        let doc = roxmltree::Document::parse(&text)
            .unwrap_or_else(|e| panic!("{} is not well-formed: {e}", path.display()));
        assert!(
            doc.root_element().has_tag_name("include"),
            "{}",
            path.display()
        );
        for ext in doc.descendants().filter(|n| n.has_tag_name("extension")) {
            let condition = ext
                .children()
                .find(|n| n.has_tag_name("condition"))
                .expect("an extension has a condition");
            let actions = condition
                .children()
                .filter(|n| n.has_tag_name("action"))
                .map(|a| {
                    (
                        a.attribute("application").unwrap().to_string(),
                        a.attribute("data").unwrap_or("").to_string(),
                    )
                })
                .collect();
            out.push(Extension {
                file: path.file_name().unwrap().to_string_lossy().into_owned(),
                name: ext.attribute("name").unwrap().to_string(),
                number: condition.attribute("expression").unwrap_or("").to_string(),
                actions,
            });
        }
    }
    out
}

#[test]
fn every_xml_file_is_well_formed() {
    let mut n = 0;
    for dir in ["dialplan", "freeswitch/autoload_configs"] {
        for (path, text) in xml_files(dir) {
            roxmltree::Document::parse(&text)
                .unwrap_or_else(|e| panic!("{} is not well-formed: {e}", path.display()));
            n += 1;
        }
    }
    assert!(n >= 6, "only {n} XML files");
}

#[test]
fn names_and_numbers_are_unique_and_every_set_is_name_value() {
    let exts = extensions();
    let names: BTreeSet<_> = exts.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names.len(), exts.len(), "duplicate extension names");
    let numbers: BTreeSet<_> = exts.iter().map(|e| e.number.as_str()).collect();
    assert_eq!(
        numbers.len(),
        exts.len(),
        "two extensions answer the same number"
    );
    for e in &exts {
        for (app, data) in &e.actions {
            if app == "set" || app == "export" {
                let (name, _) = data
                    .split_once('=')
                    .unwrap_or_else(|| panic!("{}: `{app} {data}` has no =", e.name));
                assert!(
                    !name.is_empty() && !name.contains(' '),
                    "{}: {data}",
                    e.name
                );
            }
        }
    }
}

#[test]
fn realtime_extensions_cover_every_playout_with_the_tenant_and_call_in_the_url() {
    let mut playouts = BTreeSet::new();
    let mut modules = BTreeSet::new();
    for e in extensions() {
        let Some(start) = e.actions.iter().find_map(|(app, data)| {
            (app == "set" && data.contains("start ws://")).then_some(data.as_str())
        }) else {
            continue;
        };
        let module = if start.contains("${uuid_audio_stream ${uuid} start ") {
            "audio_stream"
        } else if start.contains("${uuid_audio_fork ${uuid} start ") {
            "audio_fork"
        } else {
            panic!("{}: unknown module in {start}", e.name)
        };
        modules.insert(module);
        assert_eq!(e.apps()[0], "answer", "{}: answer first", e.name);
        assert!(
            start.contains("/stream/${domain_name}/${uuid}?rate=16000&playout="),
            "{}: {start}",
            e.name
        );
        assert!(
            start.contains("\"domain_uuid\":\"${domain_uuid}\""),
            "{}: the metadata carries domain_uuid: {start}",
            e.name
        );
        assert!(start.contains(" mono 16k "), "{}: mono for agents", e.name);
        let playout = start
            .split("playout=")
            .nth(1)
            .and_then(|s| s.split([' ', '&']).next())
            .unwrap();
        playouts.insert(playout.to_string());
        let last = *e.apps().last().unwrap();
        match playout {
            // The bridge plays files over the event socket: the call just waits.
            "file" | "play_audio" => assert_eq!(last, "park", "{}", e.name),
            // Write-replace playback needs frames written on the channel.
            "binary" | "stream_audio" | "raw_audio" => {
                assert_eq!(
                    e.actions.last().unwrap(),
                    &("playback".to_string(), "silence_stream://-1".to_string()),
                    "{}",
                    e.name
                )
            }
            other => panic!("{}: unknown playout {other}", e.name),
        }
        if module == "audio_stream" {
            assert_eq!(e.sets().get("STREAM_HEART_BEAT"), Some(&"10"), "{}", e.name);
            if matches!(playout, "binary" | "stream_audio" | "raw_audio") {
                assert_eq!(e.sets().get("STREAM_PLAYBACK"), Some(&"true"), "{}", e.name);
            }
        }
    }
    let want: BTreeSet<String> = ["binary", "stream_audio", "raw_audio", "file", "play_audio"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(playouts, want);
    assert_eq!(
        modules,
        BTreeSet::from(["audio_stream", "audio_fork"]),
        "both modules"
    );
}

#[test]
fn turn_based_extensions_set_what_the_scripts_need() {
    let lua: Vec<Extension> = extensions()
        .into_iter()
        .filter(|e| e.apps().contains(&"lua"))
        .collect();
    let scripts: BTreeSet<String> = lua
        .iter()
        .map(|e| {
            let (_, script) = e.actions.iter().find(|(a, _)| a == "lua").unwrap();
            assert!(
                root().join("lua").join(script).is_file(),
                "{}: lua/{script} does not exist",
                e.name
            );
            assert_eq!(e.apps().last(), Some(&"lua"), "{}: lua runs last", e.name);
            let sets = e.sets();
            for needed in [
                "voice_ai_turn_api_url",
                "voice_ai_api_key",
                "voice_ai_human_target",
                "voice_ai_record_dir",
            ] {
                assert!(
                    sets.contains_key(needed),
                    "{} ({}): no {needed}",
                    e.name,
                    e.file
                );
            }
            assert_eq!(sets["voice_ai_context"], "${domain_name}", "{}", e.name);
            if let Some(t) = sets.get("voice_ai_silence_threshold") {
                let energy: u32 = t.parse().unwrap();
                assert!(
                    (50..=2000).contains(&energy),
                    "{}: an energy level, not seconds: {t}",
                    e.name
                );
            }
            if script.ends_with("route.lua") {
                for needed in ["voice_ai_mode", "voice_ai_bridge_url", "voice_ai_bridge_ws"] {
                    assert!(sets.contains_key(needed), "{}: no {needed}", e.name);
                }
            }
            script.clone()
        })
        .collect();
    assert_eq!(
        scripts,
        BTreeSet::from(["voice_ai/route.lua".into(), "voice_ai/secretary.lua".into()])
    );
}

#[test]
fn the_inbound_route_sets_the_tenant_before_transferring_into_its_context() {
    let exts = extensions();
    let did = exts
        .iter()
        .find(|e| e.apps().contains(&"transfer"))
        .expect("an inbound route");
    let sets = did.sets();
    let domain = sets["domain_name"];
    assert!(sets["domain_uuid"].len() == 36, "{}", sets["domain_uuid"]);
    let (_, transfer) = did.actions.iter().find(|(a, _)| a == "transfer").unwrap();
    let parts: Vec<&str> = transfer.split(' ').collect();
    assert_eq!(parts[1..], ["XML", domain], "into the tenant's context");
    assert!(
        exts.iter()
            .any(|e| e.number.contains(parts[0]) && e.apps().contains(&"lua")),
        "the route targets an AI extension"
    );
}
