//! README.md stays honest: its Rust example is the compiled `readme` example, and the
//! commands it names exist.

const README: &str = include_str!("../../README.md");

#[test]
fn readme_example_is_the_compiled_one() {
    let start = README.find("```rust\n").expect("a rust block") + "```rust\n".len();
    let end = start + README[start..].find("```").expect("block end");
    let example = include_str!("../../examples/examples/readme.rs");
    assert!(
        example.ends_with(&README[start..end]),
        "update examples/examples/readme.rs from README.md"
    );
}

#[test]
fn readme_commands_exist() {
    for script in ["scripts/demo.sh", "scripts/test.sh"] {
        assert!(README.contains(&format!("bash {script}")));
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(script);
        assert!(path.exists(), "{script}");
    }
}
