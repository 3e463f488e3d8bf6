# Source this file (". scripts/node24.sh") to put Node 24 on PATH.
# Machines that ship an older node get Node 24 from the npm registry's node@24
# package, installed once into .tools/node24 (git-ignored); nothing is downloaded
# from anywhere but the npm registry.
_greeter_root=$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)
_greeter_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$_greeter_major" -lt 24 ]; then
  _greeter_node_dir="$_greeter_root/.tools/node24"
  if [ ! -x "$_greeter_node_dir/node_modules/.bin/node" ]; then
    echo "installing Node 24 from the npm registry into $_greeter_node_dir" >&2
    npm install --prefix "$_greeter_node_dir" --no-save --no-package-lock --no-audit --no-fund --loglevel=error node@24 >&2 || return 1 2>/dev/null || exit 1
  fi
  export PATH="$_greeter_node_dir/node_modules/.bin:$PATH"
fi
unset _greeter_root _greeter_major _greeter_node_dir
