"""Tiny neural codecs and Hugging Face classifiers with random weights, built by the packages' own constructors and
saved with ``save_pretrained``: what a user's downloaded weights look like, without a download."""
from __future__ import annotations

import json
from pathlib import Path

#: AudioSet-style labels of the tiny classifier and their scenes (many to one: Bus and Vehicle are both "bus").
LABEL_MAP = {"Aircraft": "airport", "Bus": "bus", "Vehicle": "bus", "Subway, metro, underground": "metro",
             "Train station": "metro_station", "Bird": "park", "Crowd": "public_square", "Speech": "public_square",
             "Shopping": "shopping_mall", "Walk, footsteps": "street_pedestrian",
             "Traffic noise, roadway noise": "street_traffic", "Tram": "tram"}


def codec_weights(root: Path, seed: int = 0) -> Path:
    """EnCodec 24 kHz, EnCodec 48 kHz and DAC 44.1 kHz, as ``root/<repository name>/`` folders."""
    import torch
    from transformers import DacConfig, DacModel, EncodecConfig, EncodecModel

    torch.manual_seed(seed)
    small = {"num_filters": 4, "hidden_size": 16, "num_lstm_layers": 1, "codebook_size": 1024, "codebook_dim": 16}
    EncodecModel(EncodecConfig(sampling_rate=24000, target_bandwidths=[1.5, 3.0, 6.0, 12.0, 24.0], **small)) \
        .save_pretrained(root / "encodec_24khz")
    EncodecModel(EncodecConfig(sampling_rate=48000, audio_channels=2, normalize=True, chunk_length_s=1.0,
                               overlap=0.01, target_bandwidths=[3.0, 6.0, 12.0, 24.0], **small)) \
        .save_pretrained(root / "encodec_48khz")
    DacModel(DacConfig(encoder_hidden_size=4, decoder_hidden_size=32, n_codebooks=9, codebook_size=1024,
                       codebook_dim=4, downsampling_ratios=[2, 4, 8, 8], upsampling_ratios=[8, 8, 4, 2],
                       sampling_rate=44100, hidden_size=32)).save_pretrained(root / "dac_44khz")
    return root


def audio_classifier(folder: Path) -> Path:
    """An AST audio classifier with 12 AudioSet-style labels, and its feature extractor."""
    import torch
    from transformers import ASTConfig, ASTFeatureExtractor, ASTForAudioClassification

    torch.manual_seed(0)
    labels = list(LABEL_MAP)
    config = ASTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                       num_mel_bins=16, max_length=64, frequency_stride=8, time_stride=8, patch_size=8,
                       id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)})
    ASTForAudioClassification(config).save_pretrained(folder)
    ASTFeatureExtractor(num_mel_bins=16, max_length=64, sampling_rate=16000).save_pretrained(folder)
    return folder


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte-level alphabet (what a RoBERTa tokenizer's vocabulary is made of)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    codes, extra = printable[:], 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, codes)))


def clap(folder: Path) -> Path:
    """A CLAP model (HTSAT audio tower, RoBERTa text tower), its feature extractor and a byte-level tokenizer."""
    import torch
    from transformers import (
        ClapAudioConfig,
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        ClapTextConfig,
        RobertaTokenizer,
    )

    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>", "<mask>", *_bytes_to_unicode().values()])}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    text = ClapTextConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                          intermediate_size=32, max_position_embeddings=80, projection_dim=8)
    audio = ClapAudioConfig(window_size=4, num_mel_bins=16, spec_size=64, patch_size=4, patch_stride=(4, 4),
                            depths=[1, 1], num_heads=[1, 1], hidden_size=16, patch_embeds_hidden_size=8,
                            projection_dim=8, enable_fusion=False)
    ClapModel(ClapConfig(text_config=text.to_dict(), audio_config=audio.to_dict(), projection_dim=8)) \
        .save_pretrained(folder)
    ClapFeatureExtractor(feature_size=16, sampling_rate=48000, hop_length=480, max_length_s=1, fft_window_size=1024,
                         truncation="rand_trunc", padding="repeatpad").save_pretrained(folder)
    RobertaTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt")).save_pretrained(folder)
    return folder
