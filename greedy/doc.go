// Package greedy generates text from a model.Model by greedy (argmax) decoding with a
// key/value cache, numerically as mlx-lm's generate does at temperature 0: the prompt but
// its last token is prefilled in one causal pass, then one token is fed at a time.
// It is the small generation path the quickstart needs to show a model before and after
// its adapters.
package greedy
