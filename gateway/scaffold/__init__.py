"""Templates of `paymux plugin new NAME` (gateway/cli/plugin.py): a separate, installable channel-plugin
package. Files under package/ are copied with `{{name}}` (the plugin's module and channel name) and
`{{Name}}` (its class-name form) filled in; a `.tmpl` suffix is dropped."""
