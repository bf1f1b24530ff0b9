//! iDesign rules: each rule refused with its code, compliant files allowed.

use orket_governance::idesign::check_idesign;

fn refused(path: &str, content: &str, expected: &str) -> String {
    match check_idesign(path, content) {
        Ok(()) => panic!("{path}: expected {expected}, got Ok"),
        Err(r) => {
            assert_eq!(r.code, expected, "{path}: {r}");
            assert!(r.message.contains(path), "the message names the path: {r}");
            r.message
        }
    }
}

fn allowed(path: &str, content: &str) {
    if let Err(r) = check_idesign(path, content) {
        panic!("{path}: expected Ok, got {r}");
    }
}

#[test]
fn compliant_manager_importing_an_accessor_is_allowed() {
    allowed(
        "src/managers/auth_manager.py",
        "from accessors.user_accessor import UserAccessor\n\n\
         class AuthManager:\n    def __init__(self):\n        self.users = UserAccessor()\n",
    );
    allowed(
        "managers/billing_manager.py",
        "import engines.pricing_engine\nfrom ..engines import tax_engine\n\n\
         @dataclass\nclass BillingManager:\n    class Config:\n        pass\n",
    );
    allowed(
        "product/engines/pricing_engine.py",
        "from accessors.db_accessor import DbAccessor\n\nclass PricingEngine:\n    pass\n",
    );
    allowed(
        "accessors/db_accessor.py",
        "import sqlite3\nfrom utils.helpers import retry\n\nclass DbAccessor:\n    pass\n",
    );
    allowed("utils/strings.py", "def slug(s):\n    return s.lower()\n");
    allowed("tests/test_auth.py", "import managers.auth_manager\n");
    allowed("src/controllers/api.ts", "export const x = 1;\n");
}

#[test]
fn source_file_at_the_root_is_refused() {
    let msg = refused("app.py", "print('hi')\n", "IDESIGN_ROOT_FILE");
    assert!(msg.contains("root"), "{msg}");
    refused("main.rs", "fn main() {}\n", "IDESIGN_ROOT_FILE");
    let r = check_idesign("./index.js", "1;\n").unwrap_err();
    assert_eq!(r.code, "IDESIGN_ROOT_FILE");
    assert!(r.message.contains("'index.js'"), "{r}");
    // Not source files: not checked.
    allowed("README.md", "# x");
    allowed("requirements.txt", "flask");
}

#[test]
fn source_file_outside_the_allowed_folders_is_refused() {
    let msg = refused("lib/auth.py", "x = 1\n", "IDESIGN_FOLDER");
    assert!(msg.contains("'lib'"), "{msg}");
    assert!(
        msg.contains("managers"),
        "the allowed folders are listed: {msg}"
    );
    refused("src/helpers/strings.ts", "", "IDESIGN_FOLDER");
    refused("src/app.py", "x = 1\n", "IDESIGN_FOLDER");
    refused("src/src/managers/a_manager.py", "", "IDESIGN_FOLDER");
    allowed("src/services/mail.js", "");
    allowed("agent_output/report.py", "x = 1\n");
}

#[test]
fn layer_files_must_carry_the_layer_word() {
    let msg = refused("managers/auth.py", "x = 1\n", "IDESIGN_NAMING");
    assert!(msg.contains("manager"), "{msg}");
    assert!(msg.contains("auth_manager.py"), "suggests a name: {msg}");
    refused("src/engines/pricing.rs", "", "IDESIGN_NAMING");
    refused("accessors/db.ts", "", "IDESIGN_NAMING");
    refused("accessors/db_manager.py", "", "IDESIGN_NAMING");
    allowed("managers/AuthManager.py", "class AuthManager:\n    pass\n");
    allowed("src/engines/pricing_engine.rs", "pub struct Whatever;\n");
}

#[test]
fn python_classes_in_layer_files_need_the_suffix() {
    let msg = refused(
        "managers/auth_manager.py",
        "class AuthManager:\n    pass\n\nclass Helper:\n    pass\n",
        "IDESIGN_CLASS_SUFFIX",
    );
    assert!(msg.contains("'Helper'"), "{msg}");
    assert!(msg.contains("line 4"), "{msg}");
    assert!(msg.contains("Manager"), "{msg}");
    refused(
        "engines/tax_engine.py",
        "@register\nclass Tax:\n    pass\n",
        "IDESIGN_CLASS_SUFFIX",
    );
    refused(
        "accessors/user_accessor.py",
        "class UserManager:\n    pass\n",
        "IDESIGN_CLASS_SUFFIX",
    );
    // Nested classes and classes in other folders are not layer classes.
    allowed(
        "engines/tax_engine.py",
        "class TaxEngine:\n    class Rates:\n        pass\n\ndef f():\n    class Local:\n        pass\n",
    );
    allowed("models/user.py", "class User:\n    pass\n");
}

#[test]
fn accessors_may_not_import_managers_or_engines() {
    for import in [
        "from managers.auth_manager import AuthManager",
        "import managers",
        "import src.managers.auth_manager as am",
        "from src.managers import auth_manager",
        "from ..managers.auth_manager import AuthManager",
        "from .. import managers",
        "from engines import pricing_engine",
        "import app.engines.pricing_engine",
    ] {
        let content = format!("import os\n{import}\n\nclass UserAccessor:\n    pass\n");
        let msg = refused("accessors/user_accessor.py", &content, "IDESIGN_IMPORT");
        assert!(msg.contains("line 2"), "{import}: {msg}");
        assert!(msg.contains("accessor"), "{import}: {msg}");
    }
    // Inside a function too.
    refused(
        "src/accessors/user_accessor.py",
        "def load():\n    from managers import auth_manager\n",
        "IDESIGN_IMPORT",
    );
}

#[test]
fn engines_may_not_import_managers_but_may_import_accessors() {
    let msg = refused(
        "engines/pricing_engine.py",
        "from managers.billing_manager import BillingManager\n",
        "IDESIGN_IMPORT",
    );
    assert!(msg.contains("managers"), "{msg}");
    allowed(
        "engines/pricing_engine.py",
        "from accessors import price_accessor\nimport engines.tax_engine\nimport managers_docs as m\n",
    );
}

#[test]
fn python_syntax_error_is_refused_with_line_and_column() {
    let msg = refused(
        "utils/strings.py",
        "def ok():\n    return 1\n\ndef broken(:\n    return 2\n",
        "IDESIGN_SYNTAX",
    );
    assert!(msg.contains("line 4"), "{msg}");
    assert!(msg.contains("column"), "{msg}");
    let msg = refused(
        "managers/auth_manager.py",
        "class AuthManager:\n    def f(self):\n        return (1 + \n",
        "IDESIGN_SYNTAX",
    );
    assert!(msg.contains("line 3"), "{msg}");
    // Other languages are not parsed.
    allowed("utils/strings.ts", "export function (((\n");
}
