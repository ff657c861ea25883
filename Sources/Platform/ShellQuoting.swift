/// A word as a POSIX shell reads it back: unchanged when it holds only characters no shell
/// treats specially, otherwise in single quotes (a quote inside written `'\''`). Commands that
/// pskd suggests (`continue with pskd train --resume --out DIR`) quote their paths with it, so
/// they run as printed whatever the path holds (spaces, quotes, `$`).
public func shellQuoted(_ word: String) -> String {
    let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:=,+@%-")
    guard word.isEmpty || !word.allSatisfy(safe.contains) else { return word }
    var quoted = "'"
    for character in word {
        if character == "'" { quoted += "'\\''" } else { quoted.append(character) }
    }
    return quoted + "'"
}
